"""Private helpers every layer may use: base64 (:mod:`.b64`), resampling and sample-format
conversion (:mod:`.dsp`), and file and folder names (:mod:`.paths`). They import nothing else
of the package."""
