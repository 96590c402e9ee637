-- Take the lease of a run execution and load the run and all its task records in one round trip.
-- A run with a concurrency key (field conc_key) is admitted only when a slot of its key is free
-- and it is among the oldest waiting runs of the key; else it waits in the key's line without a
-- message ('queued'), and is sent one when a slot frees (conc_lib.lua).
-- KEYS: run, tasks, lease, schedule, conc_active
-- ARGV: run_id, token, seq, lease_ms, now_s, prefix, conc_check_s
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing'} end
if status == 'SUCCESS' or status == 'FAILURE' or status == 'CANCELED' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return {'finished'}
end
if redis.call('HGET', KEYS[1], 'seq') ~= ARGV[3] then return {'stale'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'busy'} end
local lost = status == 'EXECUTING'
local C = redis.call('HGET', KEYS[1], 'conc_key')
if C and C ~= '' then
  local limit = tonumber(redis.call('HGET', KEYS[1], 'conc_limit')) or 1
  local held = conc_purge(C, ARGV[6])
  redis.call('ZADD', C .. ':line', 'NX', redis.call('HGET', KEYS[1], 'created_at') or ARGV[5],
             ARGV[1])
  local admitted = false
  if held < limit then
    for _, id in ipairs(conc_heads(C, ARGV[6], limit - held)) do
      if id == ARGV[1] then admitted = true end
    end
  end
  if not admitted then
    if lost then  -- its worker died: counted now, told to the execution that gets a slot
      redis.call('HINCRBY', KEYS[1], 'lost_executions', 1)
      redis.call('HSET', KEYS[1], 'conc_lost', 1)
    end
    redis.call('HSET', KEYS[1], 'status', 'QUEUED', 'wait_reason', 'concurrency',
               'updated_at', ARGV[5])
    redis.call('HDEL', KEYS[1], 'wake_at')
    redis.call('ZREM', KEYS[4], ARGV[1])
    redis.call('ZADD', KEYS[5], 'NX', tonumber(ARGV[5]) + tonumber(ARGV[7]), C)
    return {'queued'}
  end
  redis.call('ZREM', C .. ':line', ARGV[1])
  redis.call('ZADD', C .. ':holders', ARGV[5], ARGV[1])
end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[4])
redis.call('HSET', KEYS[1], 'status', 'EXECUTING', 'updated_at', ARGV[5])
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[5])
redis.call('HDEL', KEYS[1], 'wake_at', 'wait_reason', 'wake_pending', 'claims',
           'backlog_since', 'held')
local n = redis.call('HINCRBY', KEYS[1], 'executions', 1)
if lost then
  -- the previous execution ended without suspending or finishing (its worker died and its
  -- lease expired): count it, and tell this execution it takes over (rerun_after_loss)
  redis.call('HINCRBY', KEYS[1], 'lost_executions', 1)
end
if lost or redis.call('HDEL', KEYS[1], 'conc_lost') == 1 then
  redis.call('HSET', KEYS[1], 'recovered_by', n)
end
redis.call('ZADD', KEYS[4], tonumber(ARGV[5]) + tonumber(ARGV[4]) / 1000, ARGV[1])
return {'ok', redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
