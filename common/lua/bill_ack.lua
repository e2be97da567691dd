-- A settlement stream entry done with: its bill is scheduled (bill_intake) and applied to its
-- driver, so the entry is acknowledged and deleted in one step.  Nothing reads an entry after
-- that (docs/redis.md: billing's group is the stream's only reader), and deleting it here is
-- what keeps the stream from holding every bill for ever.  A crash before this script leaves the
-- entry pending, to be reclaimed (XAUTOCLAIM) and taken in again; after it, nothing is left.
-- An entry another process acknowledged first (it was reclaimed meanwhile) is deleted all the
-- same: it was acknowledged, so its bill was recorded.
-- KEYS: 1 pk:{L}:bills   ARGV: 1 group  2 entry id
-- Returns {acknowledged 1|0, deleted 1|0}
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
local deleted = redis.call('XDEL', KEYS[1], ARGV[2])
return {acked, deleted}
