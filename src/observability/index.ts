/** observability/: logging now; metrics (prometheus) and $SYS topics in later issues. */
export { createLogger, silentLogger } from './logger.ts';
