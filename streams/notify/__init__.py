"""`kefu-pulse notify`: alerts and the daily digest into the team's group chats (issue 30)."""
