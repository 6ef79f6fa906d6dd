-- The lease is not data: kept out of the AOF and replication (a restart
-- or failover drops it; every commit is still fenced by the version).
redis.set_repl(redis.REPL_NONE)
local ok = redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2])
if not ok then
  if redis.call('GET', KEYS[3]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[3], ARGV[2])
  else
    -- Someone waits: a holder keeping the lease between its commits
    -- gives it up at its next one (commit.lua).
    redis.call('SET', KEYS[4], '1', 'PX', ARGV[5])
    return {0, redis.call('PTTL', KEYS[3])}
  end
end
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
-- The commits after the caller's version (ARGV[4]), if there are any.
if v == tonumber(ARGV[4]) then return {1, v} end
return {1, v, redis.call('XRANGE', KEYS[2], '(' .. ARGV[3], '+', 'COUNT', 1000)}
