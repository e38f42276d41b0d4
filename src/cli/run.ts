import type { Command } from 'commander';
import type { Logger } from 'pino';
import { loadConfig, redactConfig } from '../config/load.js';
import { dashboardRoutes } from '../dashboard/wire.js';
import { type LiveService, type LiveServiceHooks, startLiveService } from '../service.js';
import { createLogger } from './logger.js';

/** The longest a graceful stop may take before the process gives up and exits non-zero. */
const STOP_DEADLINE_MS = 5000;

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('the live detector: MQTT in, events to MQTT, RMSE series to InfluxDB')
    .option('--config <file>', 'YAML configuration (default: config/default.yaml plus MAGWATCH_* variables)')
    .action(async (options: { config?: string }) => {
      const config = loadConfig(options.config, process.env, {
        warn: (message) => process.stderr.write(`magwatch: ${message}\n`),
      });
      const logger = createLogger(config.log.level);
      logger.info({ config: redactConfig(config) }, 'configuration loaded');
      const hooks: LiveServiceHooks = config.dashboard.enabled
        ? { routes: (service) => dashboardRoutes(service) }
        : {};
      const service = await startLiveService(config, logger, hooks);
      await stopOnSignal(service, logger);
    });
}

/**
 * Resolves after the first SIGINT or SIGTERM has stopped the service gracefully. A second signal, or a stop that
 * overruns its deadline, exits at once with a non-zero code.
 */
export function stopOnSignal(service: Pick<LiveService, 'stop'>, logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal; exiting without flushing');
        logger.flush();
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal, deadlineMs: STOP_DEADLINE_MS }, 'stopping');
      const deadline = setTimeout(() => {
        logger.error({ deadlineMs: STOP_DEADLINE_MS }, 'graceful stop overran its deadline; exiting');
        logger.flush();
        process.exit(1);
      }, STOP_DEADLINE_MS);
      deadline.unref();
      service.stop().then(
        () => {
          clearTimeout(deadline);
          logger.flush();
          resolve();
        },
        (error: unknown) => {
          logger.error({ err: error }, 'graceful stop failed');
          logger.flush();
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
