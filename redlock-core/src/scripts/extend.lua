-- Extends only when every key still holds our value; never re-creates a key and never
-- shortens one.
for _, key in ipairs(KEYS) do
  if redis.pcall("GET", key) ~= ARGV[1] then
    return 0
  end
end
local ttl = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  if redis.call("PTTL", key) < ttl then
    redis.call("PEXPIRE", key, ARGV[2])
  end
end
return 1
