import { AgentraceError } from '@agentrace/protocol';

// A mistake in how the CLI was called: reported with a pointer to --help,
// exit code 2.
export class UsageError extends AgentraceError {
  readonly code = 'AR_ERR_USAGE';
}
