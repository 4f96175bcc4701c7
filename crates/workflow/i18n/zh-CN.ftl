# Notices (in-app and mail) of the workflow area, in the recipient's language.

# Kinds of notice (the preferences on the account page).
kind-approval-requested = 需要我审批的事项
kind-approval-submitted = 我的提交已开始审批
kind-approval-step = 对我的提交的审批决定
kind-approval-finished = 我的提交的审批结果
kind-approval-reminder = 待我审批事项的提醒
kind-approval-escalated = 升级给我的事项

# Record types.
record-expense-claim = 费用报销

notice-requested-title = 待您审批：{ $title }
notice-requested-body = { $type }：“{ $process }”的第 { $step } 步等待您的决定。
notice-passed-title = 转交给您审批：{ $title }
notice-passed-body = { $name } 将此事项转交给您。
notice-standing-in = { $title }（代 { $name } 处理）
notice-submitted-title = 已提交审批：{ $title }
notice-submitted-body = { $type }：“{ $process }”已开始。
notice-step-approved = { $name } 批准了第 { $step } 步：{ $title }
notice-step-rejected = { $name } 驳回了第 { $step } 步：{ $title }
notice-step-passed = { $name } 转交了第 { $step } 步：{ $title }
notice-approved-title = 已批准：{ $title }
notice-rejected-title = 已驳回：{ $title }
notice-finished-body = { $type }：“{ $process }”已结束。
notice-escalated-title = 已升级给您：“{ $process }”的第 { $step } 步
notice-escalated-body = 一项审批自 { $since } 起等待过久，现在也在等待您的决定。
notice-reminder-title = 提醒：“{ $process }”的第 { $step } 步等待您的决定
notice-waiting-since = 自 { $since } 起等待。
