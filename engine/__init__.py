"""Making takes: from a scene of the story to video files on disk.

The video backend contract and the backends (``engine.backends``), the request
a scene makes, continuity between scenes, generation of one scene and its
outcome, takes, the content cache, best of N, hosted budgets, the model catalog
and cache, the job runners (one worker thread; Ray) with run locks and
recovery, video and audio I/O (``engine.video``), films and edit timelines of
story lines (``engine.film``) and training datasets (``engine.dataset``).

Imports ``kg``, never ``scoring``: the observer is reached through the
protocol in ``engine.observe``. Nothing here imports Streamlit.
"""
