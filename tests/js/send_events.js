// Sends what tests/collector/test_third_party_sdks.py checks, through @sentry/node, to the DSN
// given as the first argument, then flushes and exits (1 when the flush timed out).
'use strict';

const Sentry = require('@sentry/node');

Sentry.init({
  dsn: process.argv[2],
  // With this, captureMessage sends the message's stack as a synthetic exception.
  attachStacktrace: true,
  sendClientReports: false,
});

function checkout() {
  try {
    throw new Error('payment failed', { cause: new Error('card declined') });
  } catch (error) {
    Sentry.captureException(error);
  }
}

function warn(text) {
  Sentry.captureMessage(text, 'warning');
}

checkout();
warn('disk almost full');
warn('queue is backing up');

Sentry.flush(10000).then((flushed) => {
  process.exit(flushed ? 0 : 1);
});
