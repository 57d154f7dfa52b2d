DROP TABLE IF EXISTS notify_parked;
DROP TABLE IF EXISTS notify_faults;
DROP TABLE IF EXISTS notify_journey;
DROP TABLE IF EXISTS notify_dead_letters;
DROP TABLE IF EXISTS notify_emails;
DROP TABLE IF EXISTS notify_notifications;
DROP TABLE IF EXISTS notify_outbox;
DROP TABLE IF EXISTS notify_orders;
