-- The claim holds back a record's later notifications while an earlier one waits for a retry
-- or is leased, so one record's versions reach a receiver in the order they were made. This
-- index answers that check: the record's earlier rows for the subscription, oldest first.
CREATE INDEX outbox_by_record ON outbox (tenant_id, subscription_id, call_record_id, id);
