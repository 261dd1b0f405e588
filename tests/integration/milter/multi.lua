-- multi.lua — several messages on one connection, an abort in the middle,
-- a redelivered message (duplicate), a non-selected one in between.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local conn = connect()
local _, eom = message(conn, outage("QM1", "multi-1@bigcorp.example"))
assert(eom == SMFIR_CONTINUE or eom == SMFIR_ACCEPT, "first message")
local first = mt.getheader(conn, "X-Triage-Ticket", 0)
assert(first ~= nil, "first message has a ticket")
pass("first message on the connection: " .. first)

-- An aborted message: MAIL, RCPT, headers, part of the body, then abort.
mt.macro(conn, SMFIC_MAIL, "i", "QM2")
check(mt.mailfrom(conn, "<eve@bigcorp.example>"), "mailfrom")
expect(conn, SMFIR_CONTINUE, "mailfrom")
check(mt.rcptto(conn, "<support@example.test>"), "rcpt")
expect(conn, SMFIR_CONTINUE, "rcpt")
check(mt.header(conn, "Subject", "aborted"), "header")
expect(conn, SMFIR_CONTINUE, "header")
check(mt.eoh(conn), "eoh")
expect(conn, SMFIR_CONTINUE, "eoh")
check(mt.bodystring(conn, "half a bo"), "body")
expect(conn, SMFIR_CONTINUE, "body")
check(mt.abort(conn), "abort")
pass("a message aborted in the middle")

-- Not selected: ACCEPT right after the headers, nothing changed.
local eoh = message(conn, {
	qid = "QM3", from = "<dana@bigcorp.example>", rcpts = { "<alice@example.test>" },
	headers = { { "Subject", "URGENT: production API down" }, { "X-Triage-Priority", "P4" } },
})
assert(eoh == SMFIR_ACCEPT, "a message for alice is accepted at end of headers")
pass("non-selected message on the same connection: ACCEPT at end of headers")

-- The first message again (an MTA retry): the store says duplicate, same ticket.
local _, eom4 = message(conn, outage("QM4", "multi-1@bigcorp.example"))
assert(eom4 == SMFIR_CONTINUE or eom4 == SMFIR_ACCEPT, "redelivery")
local again = mt.getheader(conn, "X-Triage-Ticket", 0)
assert(again == first, "duplicate got " .. tostring(again) .. ", want " .. first)
pass("a redelivered message keeps its ticket (duplicate tolerated)")

-- And a fresh one after all that still works.
local _, eom5 = message(conn, outage("QM5", "multi-5@bigcorp.example"))
assert(eom5 == SMFIR_CONTINUE or eom5 == SMFIR_ACCEPT, "fifth message")
assert(mt.eom_check(conn, MT_HDRADD, "X-Triage-Priority", "P1"), "fifth message classified")
assert(mt.getheader(conn, "X-Triage-Ticket", 0) ~= first, "a new message gets a new ticket")
pass("five messages on one connection")
mt.disconnect(conn)
