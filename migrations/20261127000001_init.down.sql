DROP TABLE lesson_search;
DROP TABLE activity;
DROP TABLE quiz_answers;
DROP TABLE lesson_progress;
DROP TABLE sessions;
DROP TABLE users;
