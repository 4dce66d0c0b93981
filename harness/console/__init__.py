"""The console: cleaning, matching (pure) and the live session (processes).

clean        bytes to text: UTF-8 decoded, ANSI escapes removed (pure)
literals     the literals a regex cannot match without (pure)
prefilter    one scan per read for every pattern's literals (pure)
re2syntax    a Python pattern in RE2's syntax with Python's meaning, or why not (pure)
engine       a guest pattern compiled to a search of bounded cost: RE2 or a time budget
order        which milestone may come next (pure)
matcher      cleaned text to milestone and failure events (pure)
tracker      events and the clock to an outcome; owns the milestone cursor (pure)
screen       VGA text memory and screenshot comparisons (pure)
screen_match needle and still-screen milestones from screenshots and times (pure)
keys         text and key names to QMP key combos
transcript   console.raw and console.log on disk
watcher      the screen over QMP: polling, screenshots, keys
session      the live loop: the VM's console, the tracker, the watcher
"""
