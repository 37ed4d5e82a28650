-- Delivery claims as a compare-and-set (owner: alerts/outbox.py, issue 11). Every state change of a
-- delivery writes version = stored version + 1 with insert_deduplication_token "<delivery_id>@<version>":
-- of two workers writing the same next version, the first insert is kept and the second is dropped as
-- a duplicate, so the claim that FINAL shows afterwards is the same for everyone. A plain MergeTree
-- deduplicates tokens only within this window of recent inserts (ReplicatedMergeTree does it in Keeper).
ALTER TABLE {db}.alert_outbox MODIFY SETTING non_replicated_deduplication_window = 100000;
