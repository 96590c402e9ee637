-- Take the lease of a run execution and load the run and all its task records in one round trip.
-- KEYS: run, tasks, lease, schedule   ARGV: run_id, token, seq, lease_ms, now_s
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing'} end
if status == 'SUCCESS' or status == 'FAILURE' or status == 'CANCELED' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return {'finished'}
end
if redis.call('HGET', KEYS[1], 'seq') ~= ARGV[3] then return {'stale'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'busy'} end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[4])
redis.call('HSET', KEYS[1], 'status', 'EXECUTING', 'updated_at', ARGV[5])
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[5])
redis.call('HDEL', KEYS[1], 'wake_at', 'wait_reason', 'wake_pending', 'claims',
           'backlog_since')
local n = redis.call('HINCRBY', KEYS[1], 'executions', 1)
if status == 'EXECUTING' then
  -- the previous execution ended without suspending or finishing (its worker died and its
  -- lease expired): count it, and tell this execution it takes over (rerun_after_loss)
  redis.call('HINCRBY', KEYS[1], 'lost_executions', 1)
  redis.call('HSET', KEYS[1], 'recovered_by', n)
end
redis.call('ZADD', KEYS[4], tonumber(ARGV[5]) + tonumber(ARGV[4]) / 1000, ARGV[1])
return {'ok', redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
