-- Extends only when every key still holds our value; never re-creates a key.
for _, key in ipairs(KEYS) do
  if redis.pcall("GET", key) ~= ARGV[1] then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call("PEXPIRE", key, ARGV[2])
end
return 1
