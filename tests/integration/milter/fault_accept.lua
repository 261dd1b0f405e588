-- fault_accept.lua — classification fails (TRIAGE_TEST_FAULT=classify) with
-- on_error = accept: the message is accepted without triage headers; the
-- forged ones are still removed.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local conn = connect()
local _, eom = message(conn, outage("QF1", "fault-1@bigcorp.example"))
assert(eom == SMFIR_CONTINUE or eom == SMFIR_ACCEPT, "eom reply " .. tostring(eom))
assert(not mt.eom_check(conn, MT_HDRADD, "X-Triage-Priority"), "no header after a failure")
assert(mt.eom_check(conn, MT_HDRDELETE, "X-Triage-Priority"), "forged header still removed")
pass("internal error, on_error = accept: accepted, no triage headers, forged ones removed")
mt.disconnect(conn)
