# Notices (in-app and mail) of the workflow area, in the recipient's language.

# Kinds of notice (the preferences on the account page).
kind-approval-requested = 나에게 온 승인 요청
kind-approval-submitted = 내 제출로 시작된 승인
kind-approval-step = 내 제출에 대한 결정
kind-approval-finished = 내 제출의 승인 결과
kind-approval-reminder = 대기 중인 항목 알림
kind-approval-escalated = 나에게 상향 이관된 항목

# Record types.
record-expense-claim = 경비 청구

notice-requested-title = 승인 요청: { $title }
notice-requested-body = { $type }: "{ $process }"의 { $step }단계가 결정을 기다립니다.
notice-passed-title = 승인 전달됨: { $title }
notice-passed-body = { $name }님이 이 항목을 전달했습니다.
notice-standing-in = { $title } ({ $name }님 대리)
notice-submitted-title = 승인 요청됨: { $title }
notice-submitted-body = { $type }: "{ $process }" 승인이 시작되었습니다.
notice-step-approved = { $name }님이 { $step }단계를 승인했습니다: { $title }
notice-step-rejected = { $name }님이 { $step }단계를 반려했습니다: { $title }
notice-step-passed = { $name }님이 { $step }단계를 전달했습니다: { $title }
notice-approved-title = 승인됨: { $title }
notice-rejected-title = 반려됨: { $title }
notice-finished-body = { $type }: "{ $process }" 승인이 끝났습니다.
notice-escalated-title = 상향 이관됨: "{ $process }"의 { $step }단계
notice-escalated-body = { $since }부터 대기 중인 승인이 이제 귀하의 결정도 기다립니다.
notice-reminder-title = 알림: "{ $process }"의 { $step }단계가 결정을 기다립니다
notice-waiting-since = { $since }부터 대기 중입니다.
