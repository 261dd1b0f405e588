-- body_limit.lua — a body far over [milter] body_bytes, in many chunks:
-- only the start is kept; still classified; the filter stays healthy.
dofile(os.getenv("LUA_DIR") .. "/common.lua")
local conn = connect()
local m = outage("QB1", "body-1@bigcorp.example")
local chunk = string.rep("filler line that is not looked at at all....\r\n", 1400)   -- ~64 KB
m.bodies = { m.body }
for _ = 1, 30 do table.insert(m.bodies, chunk) end   -- ~2 MB
local _, eom = message(conn, m)
assert(eom == SMFIR_CONTINUE or eom == SMFIR_ACCEPT, "eom reply " .. tostring(eom))
assert(mt.eom_check(conn, MT_HDRADD, "X-Triage-Priority", "P1"), "classified from the first KB")
pass("2 MB body over a 8 KB body_bytes limit: classified from its start")
-- The next message on the connection is normal.
local _, eom2 = message(conn, outage("QB2", "body-2@bigcorp.example"))
assert(eom2 == SMFIR_CONTINUE or eom2 == SMFIR_ACCEPT, "next message")
pass("the connection goes on after the big one")
mt.disconnect(conn)
