-- An operator opens a lane from afar (docs/api.md): counted in the lot-day counters as a manual
-- opening, published on the lot's lane command stream for the barrier's bridge, and audited, in
-- one step.
-- KEYS: 1 pk:{L}:day:<today>  2 pk:{L}:lane_commands  3 pk:{L}:audit
-- ARGV: 1 lane  2 reason  3 who (role US scope US name)  4 now  5 lot
-- Returns {'ok', command id, audit id}
local w = split(ARGV[3])
count(KEYS[1], 'manual_open=1,manual_open:' .. ARGV[1] .. '=1')
local cmd = redis.call('XADD', KEYS[2], 'MAXLEN', '~', '10000', '*', 'command', 'open',
                       'lot', ARGV[5], 'lane', ARGV[1], 'reason', ARGV[2], 'actor', w[3] or '',
                       'role', w[1] or '', 'at', ARGV[4])
local id = audit(ARGV[3], tonumber(ARGV[4]), 'lane_open', ARGV[5] .. '/' .. ARGV[1], ARGV[5],
                 ARGV[2], {'lane', ARGV[1], 'command', cmd})
return {'ok', cmd, id}
