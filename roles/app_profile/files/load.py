"""Request a URL from several threads for some seconds; print how many answered (profile_app's load)."""
import sys
import threading
import time
import urllib.request

url, seconds, workers = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
end, counts = time.monotonic() + seconds, {"ok": 0, "error": 0}
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def hit():
    while time.monotonic() < end:
        try:
            with opener.open(url, timeout=5) as r:
                r.read()
            counts["ok"] += 1
        except Exception:
            counts["error"] += 1


threads = [threading.Thread(target=hit) for _worker in range(workers)]
[t.start() for t in threads]
[t.join() for t in threads]
print("%d requests answered, %d failed, in %.0f s" % (counts["ok"], counts["error"], seconds))
