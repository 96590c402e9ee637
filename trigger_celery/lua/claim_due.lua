-- The poller claims runs whose schedule is due: it pushes each entry back by ARGV[2] seconds
-- (so a lost message is sent again) and returns, per run: id, seq, job id, runs queue.
-- A run whose lease is still held (a live execution) is skipped. A run left EXECUTING without a
-- lease (its execution's worker died, or the store was away) is recovered only when ARGV[5] is
-- '1': a poller that has not been connected for a full lease leaves it to its execution, which
-- takes its lease back if it is alive (renew.lua).
-- KEYS: schedule   ARGV: now_s, resend_s, limit, prefix, recover ('1'/'0')
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local out = {}
for _, id in ipairs(ids) do
  local run = ARGV[4] .. ':run:{' .. id .. '}'
  local status = redis.call('HGET', run, 'status')
  if (not status) or status == 'SUCCESS' or status == 'FAILURE' or status == 'CANCELED' then
    redis.call('ZREM', KEYS[1], id)
  elseif redis.call('EXISTS', run .. ':lease') == 1 then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
  elseif status == 'EXECUTING' and ARGV[5] ~= '1' then
    -- left due: looked at again next round, recovered once this poller may recover
  else
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
    table.insert(out, id)
    local f = redis.call('HMGET', run, 'seq', 'job_id', 'queue')
    table.insert(out, f[1])
    table.insert(out, f[2] or '')
    table.insert(out, f[3] or '')
  end
end
return out
