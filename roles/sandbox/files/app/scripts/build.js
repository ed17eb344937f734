// Build step of the stand-in: copy src/ to dist/ and stamp the release.
// A release can break its own build by setting BUILD_FAIL in build.json.
'use strict';
const fs = require('fs');
const path = require('path');
const { execSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const cfgPath = path.join(root, 'build.json');
const cfg = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, 'utf8')) : {};
if (cfg.BUILD_FAIL) {
  console.error('build failed: ' + cfg.BUILD_FAIL);
  process.exit(1);
}
const dist = path.join(root, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(dist);
for (const f of fs.readdirSync(path.join(root, 'src'))) {
  fs.copyFileSync(path.join(root, 'src', f), path.join(dist, f));
}
let commit = 'unknown';
try { commit = execSync('git rev-parse HEAD', { cwd: root }).toString().trim(); } catch (e) { /* not a repo */ }
const version = fs.readFileSync(path.join(root, 'VERSION'), 'utf8').trim();
fs.writeFileSync(path.join(dist, 'BUILD_INFO.json'),
  JSON.stringify({ version, commit, healthBreak: cfg.HEALTH_BREAK || null,
    failRate: Number(cfg.FAIL_RATE || 0) }, null, 2));
console.log('built ' + version + ' (' + commit.slice(0, 8) + ')');
