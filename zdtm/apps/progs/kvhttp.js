// A Node.js HTTP server holding state in memory, the program of zdtm/apps/node.py.
//   node kvhttp.js DIR PORT
// GET /set?k=K&v=V, /get?k=K, /session (a cookie-keyed visit counter),
// /stats (requests, ticks of a 50 ms interval timer, the greeting of
// DIR/conf.json).  SIGHUP re-reads conf.json; SIGTERM closes the server,
// removes DIR/node.pid and exits 0.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const crypto = require('crypto');

const [dir, port] = process.argv.slice(2);
const store = new Map();
const sessions = new Map();
let requests = 0;
let ticks = 0;
let conf = {};
const log = (msg) => fs.appendFileSync(path.join(dir, 'node.log'), `node[${process.pid}]: ${msg}\n`);
const readConf = () => { conf = JSON.parse(fs.readFileSync(path.join(dir, 'conf.json'), 'utf8')); };
readConf();
const timer = setInterval(() => { ticks++; }, 50);

const server = http.createServer((req, res) => {
  requests++;
  const url = new URL(req.url, 'http://x');
  const send = (code, body, headers = {}) => { res.writeHead(code, headers); res.end(body + '\n'); };
  switch (url.pathname) {
    case '/set':
      store.set(url.searchParams.get('k'), url.searchParams.get('v'));
      return send(200, 'OK');
    case '/get': {
      const v = store.get(url.searchParams.get('k'));
      return v === undefined ? send(404, 'NONE') : send(200, v);
    }
    case '/session': {
      const m = /sid=(\w+)/.exec(req.headers.cookie || '');
      const sid = m ? m[1] : crypto.randomBytes(8).toString('hex');
      sessions.set(sid, (sessions.get(sid) || 0) + 1);
      return send(200, `visit ${sessions.get(sid)}`, { 'Set-Cookie': `sid=${sid}` });
    }
    case '/stats':
      return send(200, JSON.stringify({ requests, ticks, keys: store.size, sessions: sessions.size,
                                        greeting: conf.greeting }));
    default:
      return send(404, 'no such page');
  }
});

process.on('SIGHUP', () => { readConf(); log(`reloaded conf.json: greeting ${conf.greeting}`); });
process.on('SIGTERM', () => {
  clearInterval(timer);
  server.close(() => {
    fs.unlinkSync(path.join(dir, 'node.pid'));
    log('clean shutdown');
    process.exit(0);
  });
});
server.keepAliveTimeout = 500;
server.listen(Number(port), '127.0.0.1', () => {
  fs.writeFileSync(path.join(dir, 'node.pid.tmp'), `${process.pid}\n`);
  fs.renameSync(path.join(dir, 'node.pid.tmp'), path.join(dir, 'node.pid'));
  log('ready');
});
