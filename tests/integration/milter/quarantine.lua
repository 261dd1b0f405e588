-- quarantine.lua — [milter] quarantine_triggers = security.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local conn = connect()
local _, eom = message(conn, {
	qid = "QQ1", from = "<x@customer.example>", rcpts = { "<support@example.test>" },
	headers = { { "From", "x@customer.example" }, { "Subject", "Security breach: our account was hacked" },
	            { "Message-ID", "<quarantine-1@customer.example>" } },
	body = "Someone hacked our account, there was unauthorized access to our data. Security incident!\r\n",
})
assert(eom == SMFIR_CONTINUE or eom == SMFIR_ACCEPT, "eom")
assert(mt.eom_check(conn, MT_QUARANTINE, "triage: trigger security"), "not quarantined")
pass("a security incident is quarantined (smfi_quarantine)")
mt.disconnect(conn)
