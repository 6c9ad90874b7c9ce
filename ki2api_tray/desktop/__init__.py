"""The desktop: tray icon and menu, icons, OS chores (open, copy, notify), start at login, single instance."""
