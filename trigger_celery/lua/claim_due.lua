-- The poller claims runs whose schedule is due and returns, per run: id, seq, job id, runs queue.
-- Each claimed entry is pushed back so that a lost message is sent again, but not every round:
-- the n-th claim since the run's last execution began (its 'claims' field, cleared by
-- acquire.lua) pushes it back by ARGV[2] * 2^(n-1) seconds, capped at ARGV[5]. A run whose
-- message is already out (status QUEUED, or claimed before) on a queue the poller found
-- non-empty (ARGV[8..]: its message waits behind others there) is not sent again but looked at
-- again as long after as it has been behind (at least ARGV[6], at most ARGV[2] seconds), for at
-- most ARGV[5] seconds in a row (its 'backlog_since' field).
-- A run whose lease is still held (a live execution) is skipped and looked at again when the
-- lease would expire (at most ARGV[2] later): the poller wakes when an entry is due, which for
-- an execution is the instant its lease runs out. A run left EXECUTING without a lease (its
-- execution's worker died, or the store was away) is recovered only when ARGV[7] is '1': a
-- poller that has not reached the store for a full lease without a break leaves it to its
-- execution, which takes its lease back if it is alive (renew.lua).
-- KEYS: schedule
-- ARGV: now_s, resend_s, limit, prefix, resend_max_s, recheck_s, recover ('1'/'0'),
--       backlogged queue...
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local now, base, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
local backlogged = {}
for i = 8, #ARGV do backlogged[ARGV[i]] = true end
local out = {}
for _, id in ipairs(ids) do
  local run = ARGV[4] .. ':run:{' .. id .. '}'
  local status = redis.call('HGET', run, 'status')
  if (not status) or status == 'SUCCESS' or status == 'FAILURE' or status == 'CANCELED' then
    redis.call('ZREM', KEYS[1], id)
  elseif redis.call('EXISTS', run .. ':lease') == 1 then
    -- look again just after the lease would expire (a live execution's renewal pushes it on)
    local ttl = redis.call('PTTL', run .. ':lease')
    local later = base
    if ttl > 0 then later = math.min(base, ttl / 1000 + 0.05) end
    redis.call('ZADD', KEYS[1], now + later, id)
  elseif status == 'EXECUTING' and ARGV[7] ~= '1' then
    -- left due: looked at again next round, recovered once this poller may recover
  else
    local f = redis.call('HMGET', run, 'seq', 'job_id', 'queue', 'claims', 'backlog_since')
    local out_already = status == 'QUEUED' or tonumber(f[4] or '0') > 0
    local behind = out_already and backlogged[f[3] or '']
    if behind and (not f[5] or now - tonumber(f[5]) < cap) then
      if not f[5] then redis.call('HSET', run, 'backlog_since', ARGV[1]) end
      -- look again soon while the backlog is young, at most every ARGV[2] once it lasts
      local waited = now - tonumber(f[5] or ARGV[1])
      redis.call('ZADD', KEYS[1], now + math.min(base, math.max(tonumber(ARGV[6]), waited)), id)
    else
      redis.call('HDEL', run, 'backlog_since')
      local n = redis.call('HINCRBY', run, 'claims', 1)
      redis.call('ZADD', KEYS[1],
                 now + math.min(base * 2 ^ math.min(n - 1, 32), math.max(cap, base)), id)
      table.insert(out, id)
      table.insert(out, f[1])
      table.insert(out, f[2] or '')
      table.insert(out, f[3] or '')
    end
  end
end
return out
