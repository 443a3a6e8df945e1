from telnyx_audio.cli import main

raise SystemExit(main())
