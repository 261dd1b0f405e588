-- fault_tempfail.lua — classification fails with on_error = tempfail: TEMPFAIL.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local conn = connect()
local _, eom = message(conn, outage("QT1", "fault-2@bigcorp.example"))
assert(eom == SMFIR_TEMPFAIL, "eom reply " .. tostring(eom) .. ", want TEMPFAIL")
assert(not mt.eom_check(conn, MT_HDRADD), "no change")
pass("internal error, on_error = tempfail: TEMPFAIL, never a reject")
-- The connection survives for the next message (which fails the same way).
local _, eom2 = message(conn, outage("QT2", "fault-3@bigcorp.example"))
assert(eom2 == SMFIR_TEMPFAIL, "second message")
pass("the next message on the connection is handled too")
mt.disconnect(conn)
