DELETE FROM activity WHERE kind = 'lab_solved';
ALTER TABLE activity DROP CONSTRAINT activity_kind_check;
ALTER TABLE activity ADD CONSTRAINT activity_kind_check
    CHECK (kind IN ('started', 'completed', 'quiz_correct', 'quiz_wrong'));
DROP TABLE lab_solves;
DROP TABLE lab_drafts;
DROP TABLE submission_results;
DROP TABLE submissions;
