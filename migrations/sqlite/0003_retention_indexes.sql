-- Retention walks every tenant's oldest rows; these indexes make each purge batch an index range.
CREATE INDEX call_record_by_start_all_tenants ON call_record (start_ticks);
CREATE INDEX log_row_by_start_all_tenants ON log_row (start_ticks);
