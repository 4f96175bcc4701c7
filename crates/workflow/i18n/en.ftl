# Notices (in-app and mail) of the workflow area, in the recipient's language.
# Arguments: $title is the record's own summary, $type its record type's name,
# $process a process name, $step a step number, $name a person.

# Kinds of notice (the preferences on the account page).
kind-approval-requested = Approval requests for me
kind-approval-submitted = My submission started an approval
kind-approval-step = Decisions on my submissions
kind-approval-finished = Outcome of my submissions
kind-approval-reminder = Reminders of items waiting for me
kind-approval-escalated = Items escalated to me

# Record types.
record-expense-claim = Expense claim

notice-requested-title = Approval requested: { $title }
notice-requested-body = { $type }: step { $step } of "{ $process }" waits for your decision.
notice-passed-title = Approval passed to you: { $title }
notice-passed-body = { $name } passed this item on to you.
notice-standing-in = { $title } (standing in for { $name })
notice-submitted-title = Submitted for approval: { $title }
notice-submitted-body = { $type }: "{ $process }" has started.
notice-step-approved = { $name } approved step { $step }: { $title }
notice-step-rejected = { $name } rejected step { $step }: { $title }
notice-step-passed = { $name } passed on step { $step }: { $title }
notice-approved-title = Approved: { $title }
notice-rejected-title = Rejected: { $title }
notice-finished-body = { $type }: "{ $process }" has ended.
notice-escalated-title = Escalated to you: step { $step } of "{ $process }"
notice-escalated-body = An approval has waited since { $since } and now waits for you as well.
notice-reminder-title = Reminder: step { $step } of "{ $process }" waits for your decision
notice-waiting-since = Waiting since { $since }.
