-- agent.lua — an agent's reply to a customer: recorded by the reply hook
-- (first response), the message itself is not changed.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local conn = connect()
local eoh, eom = message(conn, {
	qid = "QA1", from = "<ana@example.test>", rcpts = { "<dana@bigcorp.example>" },
	headers = { { "From", "Ana <ana@example.test>" }, { "Subject", "Re: [TKT-000123] production API down" },
	            { "Message-ID", "<agent-reply-1@example.test>" } },
	body = "We are on it.\r\n",
})
assert(eoh == SMFIR_CONTINUE, "an agent's mail is read to the end")
assert(eom == SMFIR_CONTINUE or eom == SMFIR_ACCEPT, "eom")
assert(not mt.eom_check(conn, MT_HDRADD), "nothing added to an agent's reply")
pass("agent reply passed unchanged")
mt.disconnect(conn)
