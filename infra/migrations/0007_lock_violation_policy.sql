-- Issue 4: a task may fail when it changes files outside its declared locks (the task's choice, or
-- its agent profile's default, resolved when it is submitted so a retry judges the same way).
ALTER TABLE tasks ADD COLUMN fail_on_lock_violations boolean NOT NULL DEFAULT false;
