# One Argon2id verification at the hub's cost (libsodium's interactive preset), CPU per check, and a BLAKE2b of
# a 32-byte ticket for comparison; docs/benchmarks.md "The fleet with bounded password checks".
import ctypes, time, resource
s = ctypes.CDLL("libsodium.so.23")
assert s.sodium_init() >= 0
ops = s.crypto_pwhash_argon2id_opslimit_interactive()
s.crypto_pwhash_argon2id_memlimit_interactive.restype = ctypes.c_size_t
mem = s.crypto_pwhash_argon2id_memlimit_interactive()
buf = ctypes.create_string_buffer(128)
pw = "sync-hasło".encode()
assert s.crypto_pwhash_str_alg(buf, pw, ctypes.c_ulonglong(len(pw)), ctypes.c_ulonglong(ops), ctypes.c_size_t(mem), s.crypto_pwhash_alg_argon2id13()) == 0
n = 10
c0 = time.process_time(); w0 = time.perf_counter()
for _ in range(n):
    assert s.crypto_pwhash_str_verify(buf, pw, ctypes.c_ulonglong(len(pw))) == 0
c1 = time.process_time(); w1 = time.perf_counter()
print(buf.value.decode())
print(f"ops={ops} mem={mem>>20} MiB verify cpu {1000*(c1-c0)/n:.1f} ms wall {1000*(w1-w0)/n:.1f} ms (n={n}); maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss//1024} MB")
b = ctypes.create_string_buffer(32); t = ctypes.create_string_buffer(32)
c0 = time.process_time()
for _ in range(100000): s.crypto_generichash(b, 32, t, ctypes.c_ulonglong(32), None, 0)
print(f"BLAKE2b-256 of a 32-byte ticket: {1e6*(time.process_time()-c0)/100000:.2f} us cpu (incl. ctypes overhead)")
