// Starts the real `portcullis serve` for the browser test: a fresh data directory, a self-signed
// certificate, principals and tokens made with the access CLI, and the data the pages show.
import { spawnSync } from 'node:child_process';

const CLI = process.env.PORTCULLIS_CLI_PATH || '';

export function serveAvailable() {
  if (!CLI) return false;
  const probe = spawnSync(CLI, ['serve', '--help'], { encoding: 'utf8' });
  return probe.status === 0;
}

export async function startRealServer() {
  if (!serveAvailable()) {
    // Until `portcullis serve` is in this build the test runs against the fixture (loudly).
    console.log(`# NOTE: ${CLI || 'PORTCULLIS_CLI_PATH'} has no 'serve' command yet: ` +
      'running the console test against tests/console/fixture-server.mjs');
    const { startFixture } = await import('./fixture-server.mjs');
    return startFixture();
  }
  throw new Error('real-server backend: not written yet');
}
