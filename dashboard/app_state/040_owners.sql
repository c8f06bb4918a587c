-- Who set up each subscription and data alert: the scheduler renders a mail with its owner's access
-- rules (dashboard/access), never with more. owner is the signed-in e-mail (NULL when the app runs
-- open); owner_groups the groups the sign-in carried (JSON list), so a role given to a group
-- still applies when the owner is not signed in.
ALTER TABLE subscriptions ADD COLUMN owner TEXT;
ALTER TABLE subscriptions ADD COLUMN owner_groups TEXT NOT NULL DEFAULT '[]';
ALTER TABLE alerts ADD COLUMN owner TEXT;
ALTER TABLE alerts ADD COLUMN owner_groups TEXT NOT NULL DEFAULT '[]';
