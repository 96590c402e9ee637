-- A worker whose job has a concurrency limit took the lease of a run created by an enqueuer
-- that does not import the job (so the run has no conc_key): record the key it computed and
-- undo the acquisition, so that acquiring again admits or queues the run.
-- KEYS: run, lease   ARGV: token, conc_key, conc_name, conc_limit, now_s
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'conc_key', ARGV[2], 'conc_name', ARGV[3], 'conc_limit', ARGV[4],
           'status', 'QUEUED', 'updated_at', ARGV[5])
if redis.call('HINCRBY', KEYS[1], 'executions', -1) <= 0 then
  redis.call('HDEL', KEYS[1], 'started_at')
end
return 1
