-- Store one task record, fenced by the execution's lease token. With ARGV[4], only while the
-- stored record is still unsettled at that many attempts: a dispatched task's re-sent message
-- must not overwrite an attempt that a worker finished since the execution loaded the record.
-- ARGV[5] '1': the execution is about to hold for this dispatched task (``_hold.py``): the run
-- hash's ``held`` field names it, so its settle hands the record to the hold (task_settle.lua).
-- KEYS: run, tasks, lease
-- ARGV: token, idempotency_key, record_json, expected_attempts ('' = any), held ('1'/'')
-- Returns 1 stored, 0 lease lost, -1 run canceled, -2 the record moved on (nothing stored).
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'status') == 'CANCELED' then return -1 end
if ARGV[4] and ARGV[4] ~= '' then
  local cur = redis.call('HGET', KEYS[2], ARGV[2])
  if not cur then return -2 end
  local rec = decode_record(cur)
  if rec['status'] == 'COMPLETED' or rec['status'] == 'ERRORED'
      or tonumber(rec['attempts']) ~= tonumber(ARGV[4]) then
    return -2
  end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'held', ARGV[2]) end
return 1
