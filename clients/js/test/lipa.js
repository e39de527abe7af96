'use strict';
// Starts a real `lipa serve` for the tests: the binary named by LIPA_BIN,
// else one built from this repository with `go build`; simulator mode with
// a 20 ms callback delay, a fresh SQLite file, a free loopback port.

const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const repoRoot = path.resolve(__dirname, '..', '..', '..');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startLipa() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lipa-js-test-'));
  let bin = process.env.LIPA_BIN;
  if (!bin) {
    bin = path.join(dir, 'lipa');
    execFileSync('go', ['build', '-o', bin, './cmd/lipa'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const port = await freePort();
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('MPESA_') && !k.startsWith('LIPA_') && k !== 'DATABASE_URL') env[k] = v;
  }
  Object.assign(env, {
    DATABASE_URL: 'sqlite:' + path.join(dir, 'lipa.db'),
    LISTEN_ADDR: '127.0.0.1:' + port,
    MPESA_ENVIRONMENT: 'simulator',
    LIPA_SIMULATOR_CALLBACK_DELAY: '20ms',
    LIPA_APP_RATE_LIMIT: '0',
    LOG_FILE: path.join(dir, 'lipa.log'),
  });
  let output = '';
  const proc = spawn(bin, ['serve'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  let exited = false;
  proc.on('exit', () => { exited = true; });
  const url = 'http://127.0.0.1:' + port;
  const deadline = Date.now() + 60000;
  for (;;) {
    try {
      const r = await fetch(url + '/readyz');
      if (r.status === 200) break;
    } catch {}
    if (exited) throw new Error('lipa serve exited:\n' + output);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error('lipa serve was not ready within a minute:\n' + output);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let seq = 0;
  return {
    url,
    /** Runs a lipa command on the server's database and returns its stdout. */
    cli(...args) {
      return execFileSync(bin, args, { cwd: dir, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    },
    /** Creates an app and returns { name, key }. */
    createApp(prefix = 'js') {
      const name = prefix + (++seq) + '-' + process.pid;
      const out = JSON.parse(this.cli('apps', 'create', name, '--json'));
      return { name, key: out.api_key };
    },
    async stop() {
      if (!exited) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await done;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

let phones = 0;
/** An ordinary (always paying) phone number no other push of this run used. */
function freshPhone() {
  return '25472' + String(process.pid % 1000).padStart(3, '0') + String(++phones).padStart(4, '0');
}
/** A reference no other push of this run used. */
function freshRef() {
  return 'JS' + (process.pid % 10000) + '-' + (++phones);
}

module.exports = { startLipa, freshPhone, freshRef };
