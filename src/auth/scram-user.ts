/**
 * Prints one SCRAM-SHA-256 credentials line for `scramUsersFile`:
 *   node src/auth/scram-user.ts <username> <password> [iterations] >> users.scram
 * (npm scripts and npx run it on the project's Node.) The password is not stored, only the
 * salted keys RFC 5802 needs.
 */
import { scramCredentialLine } from './scram.ts';

const [username, password, iterations] = process.argv.slice(2);
if (username === undefined || password === undefined) {
  process.stderr.write('usage: node src/auth/scram-user.ts <username> <password> [iterations]\n');
  process.exit(2);
}
process.stdout.write(`${scramCredentialLine(username, password, iterations ? Number(iterations) : 4096)}\n`);
