// A multi-threaded JVM program with a large heap, the program of zdtm/apps/jvm.py.
//   java -Xms768m -Xmx768m HeapServer DIR PORT
// Keeps 64 blocks of 4 MiB (256 MiB live) filled with a pattern; four workers
// keep hashing blocks (hot, JIT-compiled code); an HTTP server on a pool of
// four threads answers /put?k=K&v=V, /get?k=K, /check (re-hash every block
// and compare with the hashes taken at start), /gc (System.gc(), then
// /check), /hot (a method first called after the restore, called until the
// JIT compiles it), /stats.  SIGHUP (sun.misc.Signal) re-reads DIR/conf;
// SIGTERM runs the shutdown hook: stop the server, remove DIR/jvm.pid.
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import sun.misc.Signal;

public class HeapServer {
    static final int BLOCKS = 64, BLOCK = 4 << 20;
    static final byte[][] heap = new byte[BLOCKS][];
    static final long[] sums = new long[BLOCKS];
    static final Map<String, String> store = new ConcurrentHashMap<>();
    static final AtomicLong requests = new AtomicLong(), hashed = new AtomicLong();
    static volatile String greeting = "";
    static volatile long hotResult;
    static Path dir;

    static long hash(byte[] b) {
        long h = 1125899906842597L;
        for (int i = 0; i < b.length; i += 64) h = 31 * h + b[i] + (i ^ b[b.length - 1 - i]);
        return h;
    }

    static long hot(long n) {     // first called after the restore
        long x = 0;
        for (long i = 0; i < n; i++) x += (i * i) ^ (x >>> 3);
        return x;
    }

    static String check() {
        int bad = 0;
        for (int i = 0; i < BLOCKS; i++) if (hash(heap[i]) != sums[i]) bad++;
        return bad == 0 ? "OK" : "BAD " + bad;
    }

    static void log(String msg) {
        try {
            Files.writeString(dir.resolve("jvm.log"), "jvm: " + msg + "\n", StandardCharsets.UTF_8,
                              java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        } catch (IOException e) { throw new RuntimeException(e); }
    }

    static void readConf() throws IOException { greeting = Files.readString(dir.resolve("conf")).trim(); }

    static void reply(HttpExchange ex, String body) throws IOException {
        byte[] out = (body + "\n").getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(200, out.length);
        try (OutputStream os = ex.getResponseBody()) { os.write(out); }
    }

    static String query(HttpExchange ex, String key) {
        String q = ex.getRequestURI().getQuery();
        if (q == null) return null;
        for (String kv : q.split("&")) if (kv.startsWith(key + "=")) return kv.substring(key.length() + 1);
        return null;
    }

    public static void main(String[] args) throws Exception {
        dir = Path.of(args[0]);
        readConf();
        for (int i = 0; i < BLOCKS; i++) {
            heap[i] = new byte[BLOCK];
            for (int j = 0; j < BLOCK; j++) heap[i][j] = (byte) (j * 7 + i);
            sums[i] = hash(heap[i]);
        }
        for (int w = 0; w < 4; w++) {
            final int first = w;
            Thread t = new Thread(() -> {
                for (int i = first; ; i = (i + 4) % BLOCKS) {
                    if (hash(heap[i]) != sums[i]) log("error: block " + i + " changed");
                    hashed.incrementAndGet();
                    try { Thread.sleep(20); } catch (InterruptedException e) { return; }
                }
            }, "hasher-" + w);
            t.setDaemon(true);
            t.start();
        }
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", Integer.parseInt(args[1])), 16);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext("/", ex -> {
            requests.incrementAndGet();
            String path = ex.getRequestURI().getPath();
            switch (path) {
                case "/put": store.put(query(ex, "k"), query(ex, "v")); reply(ex, "OK"); break;
                case "/get": reply(ex, String.valueOf(store.get(query(ex, "k")))); break;
                case "/check": reply(ex, check()); break;
                case "/gc": System.gc(); reply(ex, check()); break;
                case "/hot": hotResult = hot(Long.parseLong(query(ex, "n"))); reply(ex, String.valueOf(hotResult)); break;
                case "/stats": reply(ex, "requests=" + requests.get() + " keys=" + store.size() + " hashed="
                                     + hashed.get() + " greeting=" + greeting); break;
                default: ex.sendResponseHeaders(404, -1); ex.close();
            }
        });
        Signal.handle(new Signal("HUP"), sig -> {
            try { readConf(); log("reloaded conf: greeting " + greeting); } catch (IOException e) { log("error: " + e); }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.stop(0);
            try { Files.delete(dir.resolve("jvm.pid")); } catch (IOException e) { log("error: " + e); }
            log("clean shutdown");
        }));
        server.start();
        Files.writeString(dir.resolve("jvm.pid.tmp"), ProcessHandle.current().pid() + "\n");
        Files.move(dir.resolve("jvm.pid.tmp"), dir.resolve("jvm.pid"));
        log("ready");
    }
}
