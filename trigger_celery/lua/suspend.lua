-- End this execution and leave the run waiting; a wake-up is due at ARGV[6] (schedule score).
-- A dispatched task that settled during this execution (wake_pending) makes it due now.
-- An io.parallel batch (ARGV[12..]: the idempotency keys of its dispatched tasks in flight as
-- the execution saw them) waits for all of them: those not COMPLETED by now go into the run's
-- waitfor set, which task_settle.lua empties, waking the run once with the last one. A
-- completed task's settle during the execution (wake_pending '1') is thus accounted for by its
-- record; any other settle (wake_pending '2': an error, a retry, a rate-limit wait) or one
-- ERRORED now still makes the run due now, as does the set left empty with no time to wait
-- for (ARGV[3] ''). ARGV[10] '1': a task outside the batch may have settled: any wake_pending
-- counts.
-- ARGV[12]: the dispatched task the run waits on ('' = none): settled by now, it makes the run
-- due now. A settle during the execution usually marked wake_pending already, but not the
-- settle of a task a short hold waited for (``_hold.py``: it hands the record to the hold),
-- which may come just after the hold gave up: found here, in its record. Clears ``held``.
-- KEYS: run, tasks, lease, schedule, waitfor
-- ARGV: token, run_id, wake_at_s ('' = woken by a task), reason, now_s, due_s, idem ('' = none),
--       record_json, due_now_s, keep_pending ('1'/''), waitfor_ttl_s, waits_on, idem...
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return {'lost'} end
local function status_of(idem)  -- a task record's status (nil: no record)
  local raw = redis.call('HGET', KEYS[2], idem)
  if not raw then return nil end
  return decode_record(raw)['status']
end
redis.call('DEL', KEYS[3])
redis.call('DEL', KEYS[5])
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if redis.call('HGET', KEYS[1], 'status') == 'CANCELED' then
  redis.call('ZREM', KEYS[4], ARGV[2])
  return {'canceled', seq}  -- the record is not written, as checkpoint.lua refuses it
end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], ARGV[7], ARGV[8]) end
local pending = redis.call('HGET', KEYS[1], 'wake_pending')
if ARGV[12] ~= '' then
  redis.call('HDEL', KEYS[1], 'held')
  local st = status_of(ARGV[12])
  if st == 'COMPLETED' or st == 'ERRORED' then pending = '2' end
end
local now = pending ~= false
if #ARGV > 12 then
  now = pending == '2' or (pending ~= false and ARGV[10] == '1')
  local outstanding = 0
  for i = 13, #ARGV do
    local status = status_of(ARGV[i])
    if status == 'ERRORED' then
      now = true
    elseif status ~= 'COMPLETED' then
      redis.call('SADD', KEYS[5], ARGV[i])
      outstanding = outstanding + 1
    end
  end
  if outstanding == 0 and ARGV[3] == '' then now = true end
  if outstanding > 0 then redis.call('EXPIRE', KEYS[5], ARGV[11]) end
end
if now then
  redis.call('DEL', KEYS[5])
  redis.call('HDEL', KEYS[1], 'wake_pending')
  redis.call('HSET', KEYS[1], 'status', 'QUEUED', 'updated_at', ARGV[5])
  redis.call('ZADD', KEYS[4], ARGV[9], ARGV[2])
  return {'now', seq}
end
redis.call('HSET', KEYS[1], 'status', 'WAITING', 'wake_at', ARGV[3], 'wait_reason', ARGV[4],
           'updated_at', ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[2])
return {'waiting', seq}
