-- The request body of a WeChat Pay deduction (POST /v3/vehicle/transactions/parking), kept with the
-- bill so that every retry of an attempt sends the very bytes of its first try: WeChat treats an
-- out_trade_no re-sent with other parameters as a conflict, never as the same payment.
-- Read mode (ARGV[3] ''): the body recorded for this out_trade_no, else what building it needs.
-- Store mode: records ARGV[3] for this out_trade_no unless one is recorded already (which wins).
-- KEYS: 1 bill record pk:{L}:s:<n>  2 pk:{L}:wx
-- ARGV: 1 seq  2 out_trade_no  3 body or ''
-- Returns {'body', body} | {'fields', entry, exit, plate, lane_out, device_out, class, parking}
--       | {'unknown'}
local rec = KEYS[1]
local f = redis.call('HMGET', rec, 'wx_otn', 'wx_body', 'entry', 'exit', 'plate', 'lane_out',
                     'device_out', 'class', 'status')
if not f[9] then
  return {'unknown'}
end
if f[1] == ARGV[2] and f[2] then
  return {'body', f[2]}
end
if ARGV[3] ~= '' then
  redis.call('HSET', rec, 'wx_otn', ARGV[2], 'wx_body', ARGV[3])
  return {'body', ARGV[3]}
end
return {'fields', f[3] or '', f[4] or '', f[5] or '', f[6] or '', f[7] or '', f[8] or '',
        redis.call('HGET', KEYS[2], 's:' .. ARGV[1]) or ''}
