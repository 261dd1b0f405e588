-- untouched.lua — mail for recipients [milter] does not select passes untouched.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local conn = connect()
local eoh, eom = message(conn, {
	qid = "QU1", from = "<dana@bigcorp.example>",
	rcpts = { "<alice@example.test>", "<bob@elsewhere.example>" },
	headers = { { "Subject", "URGENT: production API down" }, { "X-Triage-Priority", "P4" } },
	body = "Our production API is down.\r\n",
})
assert(eoh == SMFIR_ACCEPT, "reply at end of headers: " .. tostring(eoh))
assert(eom == nil, "no end of message")
pass("non-selected recipients: ACCEPT after the headers, no body read")
-- A subdomain selected with @support.example.test: classified.
local _, eom2 = message(conn, {
	qid = "QU2", from = "<dana@bigcorp.example>", rcpts = { "<alice@example.test>", "<team@support.example.test>" },
	headers = { { "Subject", "How do I export to CSV?" } }, body = "Question about exports.\r\n",
})
assert(eom2 == SMFIR_CONTINUE or eom2 == SMFIR_ACCEPT, "eom")
assert(mt.eom_check(conn, MT_HDRADD, "X-Triage-Priority"), "@support.example.test selects the message")
pass("@domain entries select every address of the domain")
mt.disconnect(conn)
