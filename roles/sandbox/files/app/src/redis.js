// A tiny RESP client: one command per connection, enough for PING/GET/SET.
'use strict';
const net = require('net');

function command(url, args, timeoutMs) {
  const u = new URL(url);
  const db = Number((u.pathname || '/0').slice(1) || 0);
  const password = decodeURIComponent(u.password || '');
  const cmds = [];
  if (password) cmds.push(['AUTH', password]);
  if (db) cmds.push(['SELECT', String(db)]);
  cmds.push(args);
  const payload = cmds.map((c) => '*' + c.length + '\r\n' +
    c.map((a) => '$' + Buffer.byteLength(String(a)) + '\r\n' + a + '\r\n').join('')).join('');
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port || 6379) });
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('redis timeout')); }, timeoutMs || 1000);
    sock.on('connect', () => sock.write(payload));
    sock.on('data', (d) => {
      buf += d.toString();
      const replies = buf.split('\r\n').filter((l) => /^[+\-:$*]/.test(l));
      if (replies.length >= cmds.length) {
        clearTimeout(timer);
        sock.end();
        const err = replies.find((l) => l.startsWith('-'));
        if (err) return reject(new Error(err.slice(1)));
        resolve(replies[replies.length - 1]);
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

module.exports = { command };
