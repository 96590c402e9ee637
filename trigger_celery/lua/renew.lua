-- Extend a lease if we still hold it; for a run lease also push back its schedule entry.
-- A lease that expired while the store was away (and that nobody took since) is taken back by
-- the execution that held it, as long as the run is still that execution's: EXECUTING at the
-- same seq. So an outage longer than the lease costs no second execution.
-- KEYS: lease, schedule, run ('' name unused for a task lease)
-- ARGV: token, lease_ms, run_id ('' = a task lease), due_s, seq
-- Returns 1 renewed, 2 taken back, 0 lost (another execution holds it, or the run moved on).
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3]) end
  return 1
end
if current then return 0 end
if ARGV[3] ~= '' then
  local f = redis.call('HMGET', KEYS[3], 'status', 'seq')
  if f[1] ~= 'EXECUTING' or f[2] ~= ARGV[5] then return 0 end
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2
