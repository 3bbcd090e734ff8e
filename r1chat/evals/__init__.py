"""`r1chat eval`: the R1 model card's benchmark protocol rerun on the user's model.

`benches` says what each set is and what the card scored; `data` fetches and reads it;
`check` grades a reply; `store` keeps every graded sample as it arrives (so a run
resumes); `scores` turns samples into pass@1, its standard error and cons@k; `runner`
drives the model host with the samples as parallel replies.
"""
