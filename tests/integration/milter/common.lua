-- common.lua — helpers for the miltertest scripts of tests/integration/milter.sh.
-- The filter runs already (srv_spawn); MILTER_PORT says where.

function check(err, what)
	if err ~= nil then error(what .. ": " .. tostring(err)) end
end

function expect(conn, want, what)
	local r = mt.getreply(conn)
	if r ~= want then
		error(what .. ": reply " .. string.char(r) .. ", want " .. string.char(want))
	end
end

function connect(port)
	port = port or os.getenv("MILTER_PORT")
	local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 40, 0.25)
	if conn == nil then error("mt.connect to port " .. port .. " failed") end
	check(mt.conninfo(conn, "client.example.org", "192.0.2.10"), "conninfo")
	expect(conn, SMFIR_CONTINUE, "connect")
	-- HELO before any MAIL macro, as an MTA sends it: libmilter clears the
	-- macros of later stages when HELO arrives.
	check(mt.helo(conn, "client.example.org"), "helo")
	expect(conn, SMFIR_CONTINUE, "helo")
	return conn
end

-- Send one message up to end-of-message.  m = { qid, from, rcpts = {...},
-- headers = {{name, value}, ...}, body = "..." (or bodies = {...}) }.
-- Returns the reply to end-of-headers and, unless that was ACCEPT, the
-- reply to end-of-message.
function message(conn, m)
	mt.macro(conn, SMFIC_MAIL, "i", m.qid)
	check(mt.mailfrom(conn, m.from), "mailfrom")
	expect(conn, SMFIR_CONTINUE, "mailfrom")
	for _, r in ipairs(m.rcpts) do
		check(mt.rcptto(conn, r), "rcptto")
		expect(conn, SMFIR_CONTINUE, "rcpt " .. r)
	end
	for _, h in ipairs(m.headers) do
		check(mt.header(conn, h[1], h[2]), "header")
		expect(conn, SMFIR_CONTINUE, "header " .. h[1])
	end
	check(mt.eoh(conn), "eoh")
	local eoh = mt.getreply(conn)
	if eoh == SMFIR_ACCEPT then return eoh, nil end
	local bodies = m.bodies or { m.body or "" }
	for _, b in ipairs(bodies) do
		check(mt.bodystring(conn, b), "body")
		expect(conn, SMFIR_CONTINUE, "body")
	end
	check(mt.eom(conn), "eom")
	return eoh, mt.getreply(conn)
end

-- TAP-ish progress lines for the log (the shell script counts results).
function pass(what) mt.echo("PASS " .. what) end

function outage(qid, msgid)
	return {
		qid = qid,
		from = "<dana@bigcorp.example>",
		rcpts = { "<support@example.test>" },
		headers = {
			{ "From", "Dana Whitfield <dana@bigcorp.example>" },
			{ "To", "support@example.test" },
			{ "X-Triage-Priority", "P4" },
			{ "Subject", "URGENT: production API down for everyone" },
			{ "x-triage-ticket", "TKT-999999" },
			{ "Message-ID", "<" .. msgid .. ">" },
		},
		body = "Our production API is down, all users get 500 errors.\r\nPlease escalate immediately.\r\n",
	}
end
