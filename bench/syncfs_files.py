# 100k chats' metadata snapshots as chatd writes them (tmp file, write, rename), without a fsync
# each, then one syncfs(2) of the filesystem: the cost of the syncfs alternative.
import ctypes, os, sys, time
n = int(sys.argv[1]); d = sys.argv[2]
os.makedirs(d, exist_ok=True)
libc = ctypes.CDLL("libc.so.6", use_errno=True)
body = b"x" * 120
t0 = time.time()
for i in range(n):
    p = os.path.join(d, "chat-%016x.meta" % i)
    fd = os.open(p + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, body); os.close(fd)
    os.rename(p + ".tmp", p)
t1 = time.time()
dfd = os.open(d, os.O_RDONLY)
if libc.syncfs(dfd) != 0: raise OSError(ctypes.get_errno(), "syncfs")
t2 = time.time()
print(f"{n} files: write+rename {t1-t0:.2f} s, one syncfs {t2-t1:.2f} s, total {t2-t0:.2f} s")
