#ifndef BILL_REMINDERS_H
#define BILL_REMINDERS_H

#include "billing.h"

/*
 * Driver notifications (bill created, payment failed, overdue, defaulted, paid, restored, ...):
 * an outbox stream per lot (pk:{L}:outbox, written by the bill scripts in the same step as the
 * change), read with the consumer group "reminders" and delivered to credit_policy.reminder_webhook
 * as a JSON POST, logged either way.  An entry is acknowledged only once the webhook answered 2xx;
 * otherwise it stays pending and is taken again (XAUTOCLAIM) after a while: at least once, with the
 * stream entry id as Idempotency-Key for the receiver to de-duplicate.
 */

/** Adds a notification that no bill script wrote itself (restored, suspended, warning). */
void bill_reminder_add(bill_t *b, const char *lot, const char *kind, const char *bill,
                       const char *driver);

/** Reads and sends the outboxes (reclaim: also take over entries left pending). */
void bill_reminders_tick(bill_t *b, int reclaim);

#endif
