-- The short hold (``_hold.py``) heard that a dispatched task settled: read its record, and when
-- the task is settled (COMPLETED or ERRORED) and ARGV[2] is '1' (the hold consumed no other
-- task's notification), clear the run's wake_pending flag, which that settle set: the execution
-- goes on with the task's output in place, so its next suspension must not be due at once.
-- KEYS: run, tasks   ARGV: idem, clear ('1'/'')
-- Returns the record's JSON, or false when there is none.
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur then return false end
if ARGV[2] == '1' then
  -- cjson refuses the escape of a lone surrogate: read status from a sanitized copy
  local rec = cjson.decode((string.gsub(cur, '\\u[dD][89a-fA-F]%x%x', '\\u003f')))
  if rec['status'] == 'COMPLETED' or rec['status'] == 'ERRORED' then
    redis.call('HDEL', KEYS[1], 'wake_pending')
  end
end
return cur
